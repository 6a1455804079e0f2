"""`leadctl templates preview`: what outbound would send a lead, rendered, never sent."""
