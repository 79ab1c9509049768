/** The fully qualified name the plugin service reports in the health service. */
export const PLUGIN_SERVICE_NAME = 'hollowtrees.plugin.v1.PluginService';
