"""What a trained network looks at: attributions (Captum) and filter pictures."""
