"""The clients of a TF Serving (or `kmlc serve`) model server.

`rest_client.RestClient` and `predictions` need no TensorFlow;
`grpc_client.Client` imports it (through the `tensorflow-serving-api`
protos, whose `tensorflow.core` modules load the `tensorflow` package).
"""
