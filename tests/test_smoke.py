def test_crm_connects_as_system_user(crm):
    assert crm.user_email == "system@crm.local"
    assert [s["name"] for s in crm.stages.list()] == ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]
