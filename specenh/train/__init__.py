"""specenh.train"""
