"""How stocksync's alerts leave (ops/delivery.py's `AlertTransport`): Airflow's `HttpNotifier` on
the webhook connection and `SmtpNotifier` on the optional SMTP connection, each bounded by our
connect and read timeouts whatever the connection's extras say, and tried once (the delivery
queue retries)."""

from __future__ import annotations

from functools import cached_property
from typing import Any


class AirflowNotifiers:
    """ops/delivery.py's `AlertTransport` on Airflow's notifiers and connections."""

    def has_connection(self, conn_id: str) -> bool:
        try:
            from airflow.sdk import BaseHook

            BaseHook.get_connection(conn_id)
        except Exception:  # AirflowNotFoundException: no such channel
            return False
        return True

    def post_webhook(self, conn_id: str, endpoint: str | None, body: dict[str, Any],
                     timeouts: tuple[float, float]) -> None:
        """POST `body` through Airflow's HttpNotifier (the connection gives URL and auth). `notify()`,
        not `__call__`: the body is sent as given, never rendered as a template again."""
        from airflow.providers.http.notifications.http import HttpNotifier

        notifier = HttpNotifier(http_conn_id=conn_id, endpoint=endpoint, method="POST", json=body,
                                headers={"Content-Type": "application/json"},
                                extra_options={"timeout": timeouts, "check_response": True})
        notifier.notify({})

    def send_email(self, conn_id: str, subject: str, html_content: str, timeout: float) -> None:
        """Send through Airflow's SmtpNotifier on connection `conn_id` (its extra `to` lists the
        recipients, `from_email` the sender), at most `timeout` seconds per SMTP operation."""
        from airflow.sdk import BaseHook

        to = BaseHook.get_connection(conn_id).extra_dejson.get("to")
        if not to:
            raise ValueError(f"SMTP connection {conn_id!r} has no 'to' in its extra: nobody to send alerts to")
        _bounded_smtp_notifier(to=to, smtp_conn_id=conn_id, subject=subject, html_content=html_content,
                               timeout=timeout).notify({})


def _bounded_smtp_notifier(*, to: Any, smtp_conn_id: str, subject: str, html_content: str, timeout: float) -> Any:
    """Airflow's SmtpNotifier whose hook takes at most `timeout` seconds per SMTP operation and
    tries once (the connection's `timeout` and `retry_limit` extras default to 30 s and 5 tries)."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook
    from airflow.providers.smtp.notifications.smtp import SmtpNotifier

    class BoundedSmtpHook(SmtpHook):
        @property
        def timeout(self) -> float:  # type: ignore[override]
            return min(float(super().timeout), timeout)

        @property
        def smtp_retry_limit(self) -> int:  # type: ignore[override]
            return 0

    class BoundedSmtpNotifier(SmtpNotifier):
        @cached_property
        def hook(self) -> SmtpHook:  # type: ignore[override]
            return BoundedSmtpHook(smtp_conn_id=self.smtp_conn_id, auth_type=self.auth_type)

    return BoundedSmtpNotifier(to=to, smtp_conn_id=smtp_conn_id, subject=subject, html_content=html_content)
