"""Who may use the CRM, as whom, and what they may see and change.

- :mod:`.admin`: roles and teams (``crm.access``) and per-user database logins;
- :mod:`.rules`: the write rules checked before a write, so that a refusal names its field
  (PostgreSQL enforces the same rules with row-level security: sql/017_row_security.sql);
- :mod:`.tokens`: sign-in tokens for the served apps;
- :mod:`.page_user`: the signed page user that ``crm serve`` hands to each app's kernel.
"""
