"""The edge: AWS clients and the adapters that turn AWS words and errors into ours."""
