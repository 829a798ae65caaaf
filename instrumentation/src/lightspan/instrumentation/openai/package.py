_instruments = ("openai >= 1.40.0",)
