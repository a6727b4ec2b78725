"""The member jobs: member_merge (one module per step, the entry point in job) and member_erasure."""
