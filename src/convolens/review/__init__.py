"""Human review of labels: the queue (`queue`), figures from the verdicts (`figures`), and
corrections fed back into the taxonomy (`feedback`)."""
