"""`leadctl operators`: who may sign in to the dashboard (`cli`)."""
