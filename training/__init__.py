"""lightspan.training"""
