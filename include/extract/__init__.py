"""MySQL -> Parquet on S3 extract (see engine.py); `python -m include.extract --help` runs it outside Airflow."""
