# Example Rego policy. Copy it into the policies folder to enable it.
# Entry point: data.mcpguard.decision = {"decision", "rules", "reason"}.
package mcpguard

import rego.v1

default decision := {"decision": "ALLOW", "rules": [], "reason": "no Rego rule matched"}

weekend if time.weekday(time.now_ns()) in {"Saturday", "Sunday"}

decision := {"decision": "APPROVAL_REQUIRED", "rules": ["rego-weekend-transfers"], "reason": "transfers at weekends need approval"} if {
	input.tool.name == "bank__transfer"
	weekday := time.weekday([input.now_ns, "UTC"])
	weekday in {"Saturday", "Sunday"}
}

test_weekend_transfer_needs_approval if {
	# 2026-01-03 is a Saturday
	d := decision with input as {"tool": {"name": "bank__transfer"}, "now_ns": 1767441600000000000}
	d.decision == "APPROVAL_REQUIRED"
}

test_weekday_transfer_allowed if {
	d := decision with input as {"tool": {"name": "bank__transfer"}, "now_ns": 1767614400000000000}
	d.decision == "ALLOW"
}
