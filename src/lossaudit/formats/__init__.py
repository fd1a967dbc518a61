"""Report formats: how an :class:`~lossaudit.core.report.AuditReport` is written out."""
