"""Member daily benchmark (issues 11, 22): the daily run through the DAG, the Spark job alone, dlt, a notebook
and a notebook that does the same work as ours.

    dev/stack.sh run python -m benchmarks.member_daily --members 1000000 5000000 --repeats 3
    dev/stack.sh run python -m benchmarks.member_daily --quick     # 20,000 members, once, saves nothing
    python -m benchmarks.member_daily --render benchmarks/results/member-daily-<date>.json

On the running local stack (MariaDB, MinIO, the Databricks runner; `make daily-bench` starts it), for each
size, side by side in one run, each contender does a day's three loads of the same MySQL `member` table:
`first` (state A into a fresh, empty target), `replay` (A again, unchanged) and `change` (state B: A with
the email and address of 5% of the members changed). Contenders, interleaved (each repeat rotates their
order; the source is put back to A between them):

- dag: this project's daily run, `member_pipeline` triggered through the Airflow REST API of an Airflow of
  the benchmark's own (same code, same settings as the stack's, but its connection `mysql_members` names
  the scratch database and its buckets are the benchmark's: see PrivateAirflow);
- job: the same extract (`python -m include.extract`) in a child process, then the same run JSON
  (include/databricks_runs.member_merge_run) sent to the runner's runs/submit, polled to its end: no Airflow;
- dlt: dlt `sql_table(backend="connectorx")` merging into a Delta table on the same MinIO
  (benchmarks/dlt_contender.py, in the venv .local/bench-venv from requirements/bench.lock);
- notebook: `spark.read.jdbc` in partitions, then a Delta MERGE, with spark-submit in local[2] with the
  job's driver memory (benchmarks/notebook_contender.py);
- same_work: the notebook a strong engineer writes for our job's result (benchmarks/same_work_contender.py):
  `spark.read.jdbc` partitioned on the key, the job's standardisation rules through the same library
  functions in pandas UDFs, the quarantine, `aes_encrypt` and keyed hashes, one MERGE for member and the
  staged-union SCD2 MERGE for dim_member; every row, every day. Its tables are checked against ours, column
  by column on the decrypted values, whenever ours loaded the same state earlier in the run.

Measured per load: wall time, rows/s, peak RSS of the contender's whole process tree (and of the Databricks
run's own tree: the runner's spark-submit, its JVM and Python workers), CPU seconds by process kind,
mariadbd's and MinIO's CPU, everyone else's, and what limits it. Checked after every load (exit status 1 if
any check fails; the targets are only reported): see benchmarks/README.md.

Modules, one job each: config (fixed choices), source (the scratch MySQL source), store (the S3 buckets),
probe (process sampling), databricks and airflow (the runner and the benchmark's own Airflow), installs,
contenders (one load of each), checks (correctness), runner (the run), summary (medians, targets, limits),
report (Markdown), cli (arguments and result files); shared measurement in benchmarks.harness.
"""
