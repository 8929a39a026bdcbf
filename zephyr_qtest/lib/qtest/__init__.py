"""qTest Manager v3: the client, field settings, the id map, the exactly-once publishing protocol
(``exactly_once``), the registry of qTest kinds (``kinds``) and the reconciliation."""
