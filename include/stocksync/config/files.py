"""Settings of the file-drop WMS source (docs/file-drop-source.md): the `file_source:`
section of the config, used when `wms_source: file`.

Kept apart from `settings.py` (which only declares the section) so the source's knobs, their
defaults and their checks are read in one place. Every value is checked when the config loads,
so a typo in a header map or an unknown format fails the deployment's first parse, not the
first night.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from include.stocksync.domain.contract import FIELD_SET

WMS_SOURCES = ("http", "file")  # the settings' `wms_source`; "file" needs file_source.location
FILE_FORMATS = ("csv", "jsonl")
COMPRESSIONS = ("auto", "gzip", "none")
# A manifest is a few hundred bytes; anything far larger is not a manifest.
MAX_MANIFEST_BYTES = 64 * 1024


class FileSourceSettings(BaseModel):
    """Where the WMS drops its nightly stock file and how to read it."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no NaN or infinity in a setting

    # The drop folder as a URL ObjectStoragePath understands: file:///srv/wms-drop,
    # s3://bucket/prefix, gs://bucket/prefix, sftp://host/path. processed/ and rejected/ live under it.
    location: str = ""
    conn_id: str | None = None        # Airflow connection of the store (None: the URL's user part, or none)
    file_glob: str = "*"              # which names in the folder are data files (fnmatch)
    format: str = "csv"               # csv | jsonl
    delimiter: str = ","              # CSV only
    # file column (CSV header name, JSON Lines key) -> contract field; "" drops a column on purpose.
    # A column named exactly like a contract field maps to it without an entry.
    header_map: dict[str, str] = {}
    compression: str = "auto"         # auto (gzip magic bytes) | gzip | none
    manifest_suffix: str = ".manifest.json"  # <data file name><suffix> is its manifest
    wait_deadline_seconds: float = 10800.0   # after the run starts; no file by then: the run fails
    poke_interval_seconds: float = 60.0      # how often the trigger looks
    chunk_rows: int = 50000           # rows per COPY batch (a batch is what memory holds)

    @field_validator("header_map", mode="before")
    @classmethod
    def _pairs(cls, value: Any) -> Any:
        """From the environment (`STOCKSYNC_FILE_SOURCE__HEADER_MAP`): "Item No=sku,Qty=on_hand"."""
        if isinstance(value, str):
            pairs = [part.split("=", 1) for part in value.split(",") if part.strip()]
            if any(len(pair) != 2 for pair in pairs):
                raise ValueError("header_map from the environment must be 'column=field,column=field'")
            return {column.strip(): field.strip() for column, field in pairs}
        return value

    @model_validator(mode="after")
    def _bounds(self) -> FileSourceSettings:
        problems = []
        if self.format not in FILE_FORMATS:
            problems.append(f"format must be one of {', '.join(FILE_FORMATS)}; got {self.format!r}")
        if self.compression not in COMPRESSIONS:
            problems.append(f"compression must be one of {', '.join(COMPRESSIONS)}; got {self.compression!r}")
        if len(self.delimiter) != 1 or self.delimiter in ('"', "\n", "\r"):
            problems.append(f"delimiter must be one character other than a quote or line break; got "
                            f"{self.delimiter!r}")
        bad = {column: field for column, field in self.header_map.items() if field and field not in FIELD_SET}
        if bad:
            problems.append(f"header_map maps to fields the WMS contract does not have: {bad!r} "
                            f"(fields: {', '.join(sorted(FIELD_SET))}; '' drops a column)")
        targets = [field for field in self.header_map.values() if field]
        doubled = sorted({field for field in targets if targets.count(field) > 1})
        if doubled:
            problems.append(f"header_map maps several columns to {', '.join(doubled)}")
        if not self.manifest_suffix or "/" in self.manifest_suffix:
            problems.append(f"manifest_suffix must be a non-empty name part without '/'; got "
                            f"{self.manifest_suffix!r}")
        if not self.file_glob or "/" in self.file_glob:
            problems.append(f"file_glob must match names in the drop folder (no '/'); got {self.file_glob!r}")
        if self.wait_deadline_seconds <= 0:
            problems.append(f"wait_deadline_seconds must be > 0; got {self.wait_deadline_seconds:g}")
        if not 0 < self.poke_interval_seconds <= self.wait_deadline_seconds:
            problems.append("poke_interval_seconds must be > 0 and at most wait_deadline_seconds")
        if not 1000 <= self.chunk_rows <= 1_000_000:
            problems.append(f"chunk_rows must be 1000..1000000; got {self.chunk_rows}")
        if self.location and "://" not in self.location:
            problems.append(f"location must be a URL (file:///srv/wms-drop, s3://bucket/prefix ...); "
                            f"got {self.location!r}")
        if problems:
            raise ValueError("file_source: " + "; ".join(problems))
        return self
