"""The emergency contact network (应急工作联络网): organisations, people, contact points, groups, duty roster."""
