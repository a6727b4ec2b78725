"""What every benchmark measures with, so that no benchmark imports another's module.

- `processes`: readings from /proc (process trees, RSS, CPU time, the machine's busy time, service pids);
- `sampler`: a thread sampling at a fixed period between `with` entry and exit, and the peak RSS of a tree;
- `stack`: the local stack's environment (variables, MySQL root connection and URLs, S3, redaction);
- `delta_log`: what each Delta commit did, from its log entry, and totals over commits;
- `results`: statistics over repeats, the machine's description, and the JSON + Markdown result files;
- `member_table`: the seeded MySQL `member` table (dev/seed_members.py's generator) the MySQL benchmarks read;
- `synthetic_batches`: landed member batches generated without MySQL, for the job-only benchmarks;
- `spark_job`: running lakehouse_jobs.member.job (member_merge) in this process (session, PII keys, its step lines).
"""
