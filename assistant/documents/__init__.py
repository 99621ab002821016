"""Reading documents: the seeds folder, HTML to text, the sentence splitter with offsets."""
