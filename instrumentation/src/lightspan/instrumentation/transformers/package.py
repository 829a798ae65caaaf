_instruments = ("transformers >= 4.40.0",)
