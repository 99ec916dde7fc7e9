# Airflow image with stocksync's pinned dependencies (used by docker-compose.yaml).
FROM apache/airflow:3.3.2-python3.11
COPY requirements.txt constraints.txt /opt/stocksync/
RUN pip install --no-cache-dir -r /opt/stocksync/requirements.txt -c /opt/stocksync/constraints.txt
