# Airflow image with stocksync's pinned dependencies and its code (used by docker-compose.yaml).
# The code is copied in, owned by root: the Airflow processes (user airflow) can read it and
# cannot change a DAG, a plugin or the shop adapter; no container mounts the project folder.
# Only these four folders enter the image (.dockerignore keeps `.env`, `.local/` and the rest out).

# mysqlclient (the MySQL/MariaDB driver of the magento2 and prestashop adapters) is a C extension
# built against MariaDB Connector/C; Airflow's images no longer ship a MySQL client, so the wheel
# is built here, with the compiler and headers left behind in this stage.
FROM apache/airflow:3.3.2-python3.11 AS mysql-wheel
USER root
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev libmariadb-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
USER airflow
COPY constraints.txt /tmp/constraints.txt
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /tmp/wheels \
      "mysqlclient==$(sed -n 's/^mysqlclient==//p' /tmp/constraints.txt)"

FROM apache/airflow:3.3.2-python3.11
USER root
# the driver's runtime library only (MariaDB Connector/C)
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb3 \
 && rm -rf /var/lib/apt/lists/*
USER airflow
COPY --from=mysql-wheel /tmp/wheels /tmp/wheels
COPY requirements.txt constraints.txt /opt/stocksync/
RUN pip install --no-cache-dir --find-links /tmp/wheels -r /opt/stocksync/requirements.txt \
      -c /opt/stocksync/constraints.txt
COPY dags /opt/stocksync/dags
COPY plugins /opt/stocksync/plugins
COPY include /opt/stocksync/include
COPY devstack /opt/stocksync/devstack
# the reports volume takes this folder's owner on first use (writable by airflow, group root)
RUN mkdir -p -m 0770 /opt/airflow/reports
