"""`leadctl secrets`: the deployment's keys (`cli`) and the local run's generated ones (`local`)."""
