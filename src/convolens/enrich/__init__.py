"""Understanding components: sentiment, intents, topics, entities, ... with evidence."""
