"""Local mode: the stack of template.yaml on an in-process AWS (moto), behind a local HTTP front.

``template`` reads template.yaml, ``aws`` builds its resources in moto and runs Lambda functions
in-process, ``gateway`` turns HTTP requests into API Gateway proxy events, ``server`` serves them.
"""
