"""lakehouse_jobs: the PySpark jobs of lakehouse-ref and the contracts they share with the Airflow side.

Importing this package (or `contracts`, `manifest`) needs neither pyspark nor the cluster libraries, so
the Airflow side imports the same contract definitions the jobs use.
"""

__version__ = "0.1.0"
