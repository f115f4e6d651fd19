"""Everything that speaks to HCL Workload Automation: typed models, name parsing, the client."""
