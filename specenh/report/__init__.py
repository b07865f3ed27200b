"""specenh.report"""
