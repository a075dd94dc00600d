"""The development model server: TF Serving's gRPC and REST APIs over a
SavedModel base path (`dev_server.DevServer`, run by `kmlc serve`)."""
