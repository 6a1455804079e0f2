"""`leadctl plans show|set|diff`: a tenant's nurture plan and campaign plans, versioned."""
