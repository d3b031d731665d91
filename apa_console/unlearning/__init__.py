"""Exact unlearning: what a request covers (`targets`), its plan and queue (`requests`), the
two commits (`purge`, `forget`), the proof (`verify`, `audit_log`, `user_audit`), and the
words operators read (`describe`)."""
