"""Public warnings in the control plane: the API, recipients from the directory, audit and timeline."""
