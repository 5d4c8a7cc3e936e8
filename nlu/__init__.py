"""The NLU side: Vietnamese segmentation, the Rasa tokenizer, training data and model builds.

Importing this package imports nothing heavy: `nlu.tokenizer` (which needs Rasa)
is loaded only by Rasa itself, from the NLU service's environment.
"""
