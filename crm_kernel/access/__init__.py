"""Who may use the CRM, and as whom: sign-in tokens for the served apps (:mod:`.tokens`) and
the signed page user that ``crm serve`` hands to each app's kernel (:mod:`.page_user`)."""
