# Example Rego policy. Copy it into the policies folder to enable it.
# Entry point: data.mcpguard.decision = {"decision", "rules", "reason"}.
package mcpguard

import rego.v1

default decision := {"decision": "ALLOW", "rules": [], "reason": "no Rego rule matched"}

weekend_days := {"Saturday", "Sunday"}

is_weekend(ns) if weekend_days[time.weekday([ns, "Europe/Berlin"])]

decision := {
	"decision": "APPROVAL_REQUIRED",
	"rules": ["rego-weekend-transfers"],
	"reason": "transfers at weekends need approval",
} if {
	input.tool.name == "bank__transfer"
	is_weekend(input.now_ns)
}

# Tests call helper functions instead of `with input as`, which crashes regopy 1.5
# on rules like the one above (see docs/policies.md).
test_saturday_is_weekend if is_weekend(1767441600000000000) # 2026-01-03 12:00 UTC

test_monday_is_not_weekend if not is_weekend(1767614400000000000) # 2026-01-05 12:00 UTC
