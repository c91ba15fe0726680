"""Pipeline files: documents, values and the job kinds they declare (see ``patterns.pipeline``)."""
