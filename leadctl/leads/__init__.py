"""`leadctl leads show`: the command (`cli`), the lead's rows in PostgreSQL (`read_model`), its
records on its tenant's partitions (`kafka`), and what a person or a script reads (`render`)."""
