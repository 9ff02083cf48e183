"""Remote A2A agents a workspace calls: their cards (`card`) and saved credentials
(`services`). The call itself is the workflows app's (`workflows.a2a_client`)."""
