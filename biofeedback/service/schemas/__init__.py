"""JSON Schemas of the MQTT payloads (package data; see biofeedback.service.payloads)."""
