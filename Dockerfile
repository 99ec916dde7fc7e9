# Airflow image with stocksync's pinned dependencies and its code (used by docker-compose.yaml).
# The code is copied in, owned by root: the Airflow processes (user airflow) can read it and
# cannot change a DAG, a plugin or the shop adapter; no container mounts the project folder.
# Only these four folders enter the image (.dockerignore keeps `.env`, `.local/` and the rest out).
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/stocksync/
RUN pip install --no-cache-dir -r /opt/stocksync/requirements.txt -c /opt/stocksync/constraints.txt
COPY dags /opt/stocksync/dags
COPY plugins /opt/stocksync/plugins
COPY include /opt/stocksync/include
COPY devstack /opt/stocksync/devstack
# the reports volume takes this folder's owner on first use (writable by airflow, group root)
RUN mkdir -p -m 0770 /opt/airflow/reports
