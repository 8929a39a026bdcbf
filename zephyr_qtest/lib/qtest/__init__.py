"""qTest Manager v3: the client, field settings, the id map and the exactly-once publishing protocol."""
