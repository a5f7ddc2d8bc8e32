"""The files lora-hpo writes and reads, below every other layer: their names, small files at a
local path or a URI (``s3://...``, through pyarrow's filesystems), scratch folders that a
killed process does not leave behind, content hashes of model folders, and the columns of a
data file read cheaply. No torch, Ray, transformers, PEFT, datasets or MLflow import here."""
