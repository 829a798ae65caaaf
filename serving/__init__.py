"""lightspan.serving"""
