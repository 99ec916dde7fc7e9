"""The Airflow layer: the DAGs, their tasks and the only code that imports Airflow. Importing it
hands the layers below what they use of Airflow and of the pages (wiring.py)."""

from include.stocksync.airflow.wiring import install

install()
