-- Why: ordinary triggers do not fire when a session sets session_replication_role = replica
-- (a superuser can), which would let it rewrite amebo.log. ALWAYS triggers fire regardless,
-- so the log stays append-only for everyone short of dropping the trigger itself.

ALTER TABLE amebo.log ENABLE ALWAYS TRIGGER log_refuses_update_delete;
ALTER TABLE amebo.log ENABLE ALWAYS TRIGGER log_refuses_truncate;
