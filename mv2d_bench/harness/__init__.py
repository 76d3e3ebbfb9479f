"""The task-agnostic training harness: trainer, task interface, seeding, checkpoints, logging."""
