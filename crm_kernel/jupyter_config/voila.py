# Voilà's configuration under `crm serve` (on JUPYTER_CONFIG_PATH): the landing page lists the
# apps with their titles (crm_kernel.serve.page_config_hook, rendered by the crm template).
from crm_kernel.serve import page_config_hook

c.VoilaConfiguration.page_config_hook = page_config_hook  # noqa: F821 (c is given by traitlets)
