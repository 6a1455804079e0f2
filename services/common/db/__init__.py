"""PostgreSQL adapters shared by the services: table models, connections, migrations."""
