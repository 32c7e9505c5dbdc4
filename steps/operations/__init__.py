"""The steps of the operations after checkout (DESIGN 8b): capture.asl.json, cancel.asl.json and refund.asl.json
invoke them, as statemachine.asl.json invokes the payment saga's. Each reads its operation (store.operations) and the
payment, works under the payment's execution lease like every saga step, and is idempotent: an operation that is no
longer pending returns what was recorded."""
