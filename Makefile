# Shortcuts for the local stack and the checks; each target runs the script of the same name.
.PHONY: up down reset smoke doctor logs test bench

up:
	scripts/up.sh
down:
	scripts/down.sh
reset:
	scripts/reset.sh
smoke:
	scripts/smoke.sh
doctor:
	scripts/doctor.sh
logs:
	scripts/logs.sh
test:
	scripts/test.sh
bench:
	cargo bench --bench window_throughput
