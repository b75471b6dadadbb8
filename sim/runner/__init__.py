"""Running one scenario: build the engine's inputs, simulate, build the result record.

`build` turns a scenario into what the engine takes (step model, KV capacity, engine
config), `fleet_events` draws the fleet's failures and scaling settings, `single.run`
simulates, and `result` assembles the record. (`sim.run` is that function, re-exported.)
"""
