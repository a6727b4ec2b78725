"""MySQL -> Parquet on S3 extract (see publish.py); `python -m include.extract --help` runs it outside Airflow."""
